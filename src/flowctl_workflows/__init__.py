"""flowctl's workflow kinds, their activities and the business services bridge.

Installed as `flowctl_workflows`. Importing this package runs nothing: the workflow
sandbox re-imports these modules for every run.
"""
