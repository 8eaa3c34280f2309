"""Imaging ingestion: DICOM / NIfTI / PNG exams -> windowed, resized arrays in a content-addressed cache.

Data flow: ``dicom_header`` (one header read per file) -> ``dicom_index`` (files of an exam, ledger outcomes)
-> ``xray_view`` + ``xray`` (radiographs) or ``geometry`` + ``ct_series`` + ``ct`` (CT) -> ``window`` and
``resize`` -> ``cache``; ``ingest`` drives one exam or a whole export (``p2med ingest``, ``cli``).
"""
