"""DICOM pieces shared by the synthetic X-ray and CT writers: deterministic UIDs, the patient/study modules
with their planted identifiers, a private block, and saving as a valid Part 10 file.

Everything is a function of the caller's seed and ids, so the same seed gives byte-identical files.
Example: ``uid(seed, "E00012", "study")`` -> ``"1.2.826.0.1.3680043.8.498.1234..."``.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from .phi import Identity, Person

UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's documented root for generated UIDs
PRIVATE_CREATOR = "P2MED SYNTH HIS"
IMPLEMENTATION_UID = UID_ROOT + "1"


def uid(seed: int, *parts: object) -> str:
    return generate_uid(prefix=UID_ROOT, entropy_srcs=[str(seed), *map(str, parts)])


def da(d: dt.date) -> str:
    return f"{d:%Y%m%d}"


def tm(t: dt.datetime) -> str:
    return f"{t:%H%M%S}"


def dicom_age(birth: dt.date, on: dt.date) -> str:
    days = (on - birth).days
    if days < 31:
        return f"{max(days, 0):03d}D"
    if days < 730:
        return f"{days * 12 // 365:03d}M"
    return f"{days // 365:03d}Y"


def pn(person: Person, style: int) -> str:
    """A PersonName value: ideographic only, alphabetic=ideographic, or alphabetic only."""
    if style == 0:
        return person.name
    sur = person.surname
    ideo = f"{sur}^{person.name[len(sur):]}"
    return f"{person.pinyin}={ideo}" if style == 1 else person.pinyin


@dataclass
class StudyContext:
    """What every file of one exam shares: the patient, the study and where the identifiers go."""

    seed: int
    exam_id: str
    patient_id: str
    identity: Identity
    when: dt.datetime
    institution: str
    referring: Person
    operator: Person
    accession: str
    name_style: int              # see ``pn``
    name_in_description: bool    # plant the patient's name inside StudyDescription
    description: str

    def planted(self) -> list[tuple[str, str]]:
        """(tag keyword, value) of every identifier this study writes into each of its files."""
        ident = self.identity
        out = [("PatientName", pn(ident.patient, self.name_style)), ("PatientID", self.patient_id),
               ("PatientBirthDate", da(ident.birth_date)), ("OtherPatientIDs", ident.outpatient_no),
               ("PatientAddress", ident.address), ("PatientTelephoneNumbers", ident.phones[0]),
               ("InstitutionName", self.institution), ("ReferringPhysicianName", pn(self.referring, 2)),
               ("OperatorsName", pn(self.operator, 2)), ("AccessionNumber", self.accession),
               ("StudyDate", da(self.when.date())),
               (f"Private {PRIVATE_CREATOR} 10", ident.patient.name), (f"Private {PRIVATE_CREATOR} 11", self.patient_id),
               (f"Private {PRIVATE_CREATOR} 12", ident.phones[0])]
        if self.name_in_description:
            out.append(("StudyDescription", ident.patient.name))
        return out


def base_dataset(ctx: StudyContext, sop_class: str, sop_uid: str, modality: str) -> Dataset:
    """A dataset with the patient, general study, equipment-independent and SOP common modules filled."""
    ident = ctx.identity
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = da(ctx.when.date())
    ds.StudyTime = tm(ctx.when)
    ds.AccessionNumber = ctx.accession
    ds.Modality = modality
    ds.InstitutionName = ctx.institution
    ds.InstitutionAddress = ctx.institution[:2] + "市" + "健康路1号"
    ds.ReferringPhysicianName = pn(ctx.referring, 2)
    ds.OperatorsName = pn(ctx.operator, 2)
    ds.StudyDescription = ctx.description + (f" {ident.patient.name}" if ctx.name_in_description else "")
    ds.PatientName = pn(ident.patient, ctx.name_style)
    ds.PatientID = ctx.patient_id
    ds.OtherPatientIDs = ident.outpatient_no
    ds.PatientBirthDate = da(ident.birth_date)
    ds.PatientSex = ident.sex
    ds.PatientAge = dicom_age(ident.birth_date, ctx.when.date())
    ds.PatientAddress = ident.address
    ds.PatientTelephoneNumbers = ident.phones[0]
    ds.StudyInstanceUID = uid(ctx.seed, ctx.exam_id, "study")
    ds.StudyID = ctx.accession[-6:]
    block = ds.private_block(0x0011, PRIVATE_CREATOR, create=True)
    block.add_new(0x10, "LO", ident.patient.name)
    block.add_new(0x11, "LO", ctx.patient_id)
    block.add_new(0x12, "LO", ident.phones[0])
    return ds


def to_bytes(ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian) -> bytes:
    """Serialise as a DICOM Part 10 file (preamble + meta), deterministically."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = IMPLEMENTATION_UID
    meta.ImplementationVersionName = "P2MED_SYNTH"
    ds.file_meta = meta
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True, implicit_vr=transfer_syntax == "1.2.840.10008.1.2",
               little_endian=True)
    return buf.getvalue()


def set_pixels(ds: Dataset, stored: np.ndarray, bits_stored: int, signed: bool, photometric: str) -> None:
    """Attach a 2D 16-bit image (``stored`` already holds the stored values)."""
    rows, cols = stored.shape
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    arr = stored.astype("<i2" if signed else "<u2", copy=False)
    ds.PixelData = arr.tobytes()
