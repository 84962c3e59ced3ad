import json
import sys

inputs = json.loads(sys.argv[1])
print(f"::sum::{json.dumps((inputs['a'] + inputs['b']) * inputs['scale'])}")
