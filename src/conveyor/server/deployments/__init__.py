"""Deployments: a pipeline of a project served as an HTTP endpoint or on a schedule.

``model`` (what a lead declares, checked; a call's inputs checked against it), ``store``
(the rows), ``service`` (what routes and the Craft AI API call), ``elastic`` (a call as a
run of the queue), ``launch`` (how the warm workers of ``server/warmpool`` start).
"""
