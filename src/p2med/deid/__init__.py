"""De-identification of a hospital export: DICOM (PS3.15 Basic Profile, table-driven) and Chinese clinical text,
with keyed pseudonyms and one date shift per patient so ages and intervals survive (``p2med deid``)."""
