"""Run plans kept in the server process: a run page opened again (or by a colleague)
does not compile its pipeline again. A plan is fixed by the project, the commit (whose
content never changes) and the run's parameters; compiling a 1,000-step pipeline costs
a few hundred milliseconds on a small machine, most of a run page's time."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from conveyor.server.web.views import RunPlan

PLANS = 32  # a 1,000-step plan is a few hundred KB


class PlanCache:
    """The most recently used plans, by (project, commit, parameters). A plan that
    failed is not kept: the reason may pass (a busy git), and it is shown either way."""

    def __init__(self, size: int = PLANS) -> None:
        self.size = size
        self._plans: OrderedDict[tuple[str, str, str], RunPlan] = OrderedDict()
        self._lock = threading.Lock()  # pages run in a thread pool

    def get(self, key: tuple[str, str, dict[str, Any]], compile_: Callable[[], RunPlan]) -> RunPlan:
        project, commit, params = key
        found = (project, commit, json.dumps(params, sort_keys=True, default=str))
        with self._lock:
            plan = self._plans.get(found)
            if plan is not None:
                self._plans.move_to_end(found)
                return plan
        plan = compile_()  # outside the lock: two first pages may both compile, once
        if plan.error is None:
            with self._lock:
                self._plans[found] = plan
                self._plans.move_to_end(found)
                while len(self._plans) > self.size:
                    self._plans.popitem(last=False)
        return plan
