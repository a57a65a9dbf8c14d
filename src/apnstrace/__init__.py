"""apnstrace: find Apple device-management traffic in packet captures and show where it stopped.

    import apnstrace
    result = apnstrace.analyze(["capture.pcapng"], site=apnstrace.Site(mdm_hosts=["mdm.example.com:8443"]))
    result.flows            # pandas DataFrame, columns in apnstrace.schema.FLOWS
"""
from .errors import ApnstraceError, CaptureError, ConfigError, InputError
from .options import FlowOptions
from .pipeline import Result, analyze
from .site import Site

__version__ = "0.1.0"

__all__ = ["analyze", "Result", "Site", "FlowOptions", "ApnstraceError", "CaptureError", "ConfigError",
           "InputError", "__version__"]
