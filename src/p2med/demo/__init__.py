"""``p2med demo``: the whole pipeline on two synthetic hospitals, with controls that show whether the trained
model really uses the images and the records (steps in ``pipeline``, scoring in ``metrics`` / ``results``)."""
