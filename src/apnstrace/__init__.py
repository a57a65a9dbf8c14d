"""apnstrace: find Apple device-management traffic in packet captures and show where it stopped.

    import apnstrace
    result = apnstrace.analyze(["capture.pcapng"], site=apnstrace.Site(mdm_hosts=["mdm.example.com:8443"]))
    result.flows            # pandas DataFrame, columns in apnstrace.schema.FLOWS
"""
from . import numba_cache

numba_cache.configure()          # before any module imports numba

from .errors import ApnstraceError, CaptureError, ConfigError, InputError  # noqa: E402
from .options import FlowOptions  # noqa: E402
from .pipeline import Result, analyze  # noqa: E402
from .site import Site  # noqa: E402

__version__ = "0.1.0"

__all__ = ["analyze", "Result", "Site", "FlowOptions", "ApnstraceError", "CaptureError", "ConfigError",
           "InputError", "__version__"]
