"""Third-party files the report inlines, shipped as their authors published them.

uPlot 1.6.32 (MIT, Leon Sorokin; `uPlot-LICENSE.txt`), from the npm package `uplot`:
`dist/uPlot.iife.min.js` and `dist/uPlot.min.css`, unchanged. To upgrade: `npm pack uplot`,
copy the same two files and the licence, and run tests/loadtests/test_report_in_a_browser.py.
This package must never hold code of ours.
"""
