"""The errors a user can cause. Each message names the thing and says why and what to do."""

from __future__ import annotations


class MprviewerError(Exception):
    """Base of every error mprviewer raises on purpose."""


class DicomError(MprviewerError):
    """A source, file or series could not be turned into images."""


class SourceError(DicomError):
    """The source itself (path, archive, URL) cannot be read."""


class NotDicomError(DicomError):
    """A file is not DICOM."""


class NoImagesError(DicomError):
    """A source holds no usable image series."""


class MissingCodecError(DicomError):
    """Pixel data is compressed with a transfer syntax no installed plugin decodes."""


class GeometryError(DicomError):
    """The slices of a series do not form a volume (inconsistent sizes, orientations)."""


class LoadCancelled(DicomError):
    """The user cancelled a scan, download or load."""


class AnnotationError(MprviewerError):
    """Slice ranges or annotation files that cannot be understood."""


class DataFolderError(MprviewerError):
    """The per-user data folder (``MPRVIEWER_HOME``) cannot be created or written."""


class ProjectError(MprviewerError):
    """A labeling project, or a request on one (unknown study, label, reader), that cannot be
    carried out; nothing was changed."""
