"""Wire formats and protocol clients, below the services: no use case, no index.

* :mod:`app.protocols.dimse_scu`: the DIMSE SCU (C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET,
  storage commitment) over pynetdicom;
* :mod:`app.protocols.dimse_common`: what the SCU and the SCP (app/dimse) share: sockets,
  transfer syntaxes, Part 10 framing, AET comparison;
* :mod:`app.protocols.orthanc_peers`: the HTTP client of Orthanc peers;
* :mod:`app.protocols.dicomweb_http`: the HTTP transport of the DICOMweb client;
* :mod:`app.protocols.multipart`: ``multipart/related`` and ``multipart/form-data``
  bodies (parsing, spooling, writing) and media-type parameters.
"""
