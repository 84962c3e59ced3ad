"""The web page of ``conveyor server``: server-rendered Jinja2 pages, a little JavaScript
for the live parts, every asset inside the package (see docs/web.md)."""
