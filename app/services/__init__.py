"""Use cases shared by every door (REST, DICOMweb, DIMSE)."""
