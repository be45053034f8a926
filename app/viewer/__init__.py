"""The OHIF v3 viewer served by Pharos at ``/ohif/``.

``dist``: where the prebuilt viewer lies (fetched at set-up time by
``scripts/fetch_ohif.py``) and how its files are served; ``config``: the ``app-config.js``
Pharos generates for it, pointing at its own DICOMweb root.
"""
