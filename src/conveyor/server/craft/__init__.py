"""The Craft AI API in front of Conveyor: what the unmodified ``craft-ai-sdk`` speaks,
under ``/craft/<project>`` (its environment and control URL). See docs/craft.md."""
