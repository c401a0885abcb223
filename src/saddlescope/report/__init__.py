"""A self-contained HTML report of one analysis (``saddlescope analyze --html``).

:func:`render_report` turns an analysis record (:meth:`saddlescope.analysis.Analysis.to_dict`,
or the JSON ``saddlescope analyze --json`` wrote) into one HTML page: the verdict at the top,
the extreme eigenvalues, the way down, the spectral density (linear or log scale, switched by
CSS), the 1-D landscape along the escape direction, how the spectrum was computed and what
was analysed. The page loads nothing and runs nothing (inline SVG, no script, a strict
Content-Security-Policy), so it can be opened offline and mailed around; the record is treated
as untrusted (every string escaped, every number checked).

Modules: ``values`` (reading the untrusted record), ``figures`` (matplotlib → inline SVG),
``markup`` (HTML pieces), ``verdict`` and ``sections`` (the page's sections), ``style`` (CSS),
``page`` (the page).
"""

from saddlescope.report.page import CSP, read_record, render_report, write_report

__all__ = ["CSP", "read_record", "render_report", "write_report"]
