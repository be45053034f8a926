"""DIMSE through pynetdicom: the SCP (handlers -> services) and the SCU."""
