"""``biolens doctor``: diagnose data, models and finished runs, and tell the user what to do (guide 7.3, 7.4, 4.1).

Each check returns a :class:`~biolens.findings.Finding` (pass / warn / fail, with the fix); a
:class:`~biolens.findings.Report` collects them. The library only computes findings; ``cli/doctor.py`` prints.
"""

from __future__ import annotations

from biolens.findings import Finding, Report

__all__ = ["Finding", "Report"]
