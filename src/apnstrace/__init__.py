"""apnstrace: find Apple device-management traffic in packet captures and show where it stopped.

    import apnstrace
    result = apnstrace.analyze(["capture.pcapng"])
    result.flows            # pandas DataFrame, columns in apnstrace.schema.FLOWS
"""
from .errors import ApnstraceError, CaptureError, ConfigError, InputError
from .options import FlowOptions
from .pipeline import Result, analyze

__version__ = "0.1.0"

__all__ = ["analyze", "Result", "FlowOptions", "ApnstraceError", "CaptureError", "ConfigError",
           "InputError", "__version__"]
