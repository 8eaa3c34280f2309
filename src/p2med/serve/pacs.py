"""The PACS over DICOMweb: pull a study by StudyInstanceUID (WADO-RS) and push a signed report back as a DICOM
Basic Text SR (built with highdicom, sent by STOW-RS).

An outbound URL necessarily carries the study UID, so no URL is ever logged or put in an error: the HTTP
libraries' loggers are silenced below WARNING and failures are re-raised as ``PacsError`` naming only the
operation and the HTTP status. The password is read from a file, never from the config. It does not know the
store or the model. Example::

    pacs = Pacs("http://127.0.0.1:8042/dicom-web", "p2med", password)
    files = pacs.pull(study_uid)                      # [bytes of one DICOM file, ...]
    sop_uid = pacs.push_report(study_uid, "【影像所见】…", {"findings": "…"}, "王医生", "tiny@3fa1c2")
"""

from __future__ import annotations

import io
import logging
import warnings

import pydicom
from pydicom.uid import BasicTextSRStorage

from ..common.errors import P2MedError
from ..common.optional import require

for _name in ("dicomweb_client", "urllib3", "requests"):
    logging.getLogger(_name).setLevel(logging.WARNING)

# section key -> SR concept name of its TEXT item
CONCEPTS = {"findings": ("121071", "DCM", "Finding"), "impression": ("121073", "DCM", "Impression")}


class PacsError(P2MedError):
    pass


class Pacs:
    def __init__(self, url: str, user: str = "", password: str = "", timeout_s: float = 60) -> None:
        requests = require("requests", "serve")
        client_mod = require("dicomweb_client.api", "serve")
        session = requests.Session()
        if user:
            session.auth = (user, password)
        self.client = client_mod.DICOMwebClient(url, session=session, timeout=timeout_s)

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the message of a requests error holds the URL
            status = getattr(getattr(exc, "response", None), "status_code", None)
            raise PacsError(f"PACS {what} failed" + (f" (HTTP {status})" if status else
                                                     f" ({type(exc).__name__})")) from None

    def pull(self, study_uid: str) -> list[bytes]:
        """Every instance of the study as DICOM file bytes."""
        datasets = self._call("retrieve of the study", self.client.retrieve_study, study_uid)
        if not datasets:
            raise PacsError("PACS returned no instance for the study")
        out = []
        for ds in datasets:
            buf = io.BytesIO()
            ds.save_as(buf, enforce_file_format=True)
            out.append(buf.getvalue())
        return out

    def push_report(self, study_uid: str, text: str, sections: dict[str, str], author: str, model: str) -> str:
        """Store the signed report in the study as a Basic Text SR; returns the new SOP Instance UID."""
        hd = require("highdicom", "serve")
        sop = require("highdicom.sr.sop", "serve")   # Basic Text SR has no public class: the generic SR base
        meta = self._call("metadata retrieve", self.client.retrieve_study_metadata, study_uid)
        if not meta:
            raise PacsError("PACS returned no metadata for the study")
        with warnings.catch_warnings():        # pixel data stays in the PACS (a bulk-data URI): not needed here
            warnings.simplefilter("ignore", UserWarning)
            evidence = [pydicom.Dataset.from_json(m) for m in meta[:1]]
        items = [hd.sr.TextContentItem(name=hd.sr.CodedConcept(*CONCEPTS[k]), value=v[:10000],
                                       relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
                 for k, v in sections.items() if k in CONCEPTS and v]
        if not items:
            items = [hd.sr.TextContentItem(name=hd.sr.CodedConcept(*CONCEPTS["findings"]), value=text[:10000],
                                           relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)]
        root = hd.sr.ContainerContentItem(name=hd.sr.CodedConcept("18748-4", "LN", "Diagnostic Imaging Report"))
        root.ContentSequence = items
        sr = sop._SR(evidence=evidence, content=root, series_instance_uid=hd.UID(), series_number=900,
                     sop_instance_uid=hd.UID(), sop_class_uid=BasicTextSRStorage, instance_number=1,
                     manufacturer="P2Med", is_complete=True, is_final=True, is_verified=True,
                     verifying_observer_name=author if "^" in author else author + "^", verifying_organization="P2Med",
                     record_evidence=False)
        sr.SpecificCharacterSet = "ISO_IR 192"
        sr.SeriesDescription = f"P2Med report draft signed off ({model})"[:64]
        self._call("store of the report", self.client.store_instances, [sr])
        return str(sr.SOPInstanceUID)
