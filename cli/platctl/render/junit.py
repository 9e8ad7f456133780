"""JUnit XML: one testsuite per plane, one testcase per check (CI dashboards read this)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from platctl.result import Report, Status


def render_junit(report: Report) -> str:
    root = ET.Element("testsuites", name=f"platctl {report.profile}",
                      tests=str(len(report.checks)), time=f"{report.duration_ms / 1000:.3f}",
                      failures=str(sum(c.status is Status.FAIL for c in report.checks)))
    for plane in report.planes:
        checks = [c for c in report.checks if c.plane == plane.name]
        suite = ET.SubElement(root, "testsuite", name=plane.name, tests=str(len(checks)),
                              failures=str(sum(c.status is Status.FAIL for c in checks)),
                              errors="0", skipped=str(sum(c.status is Status.SKIP for c in checks)),
                              time=f"{plane.duration_ms / 1000:.3f}")
        for c in checks:
            case = ET.SubElement(suite, "testcase", name=c.id, classname=f"platctl.{c.service}",
                                 time=f"{c.duration_ms / 1000:.3f}")
            if c.status is Status.FAIL:
                failure = ET.SubElement(case, "failure", message=c.message,
                                        type=c.reason.value if c.reason else "fail")
                failure.text = c.message + (f"\nhint: {c.hint}" if c.hint else "")
            elif c.status is Status.SKIP:
                ET.SubElement(case, "skipped", message=c.message)
            else:
                out = ET.SubElement(case, "system-out")
                out.text = f"{c.status.value}: {c.message}" + (f"\nhint: {c.hint}" if c.hint else "")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
