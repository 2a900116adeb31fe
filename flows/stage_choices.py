"""After `prefect deploy --all`: each deployment run form offers its pipeline's stages as choices.

    .venv/bin/python flows/stage_choices.py

Run from the checkout that ran `prefect deploy`, with PREFECT_API_URL set (docs/prefect.md).
`prefect deploy` rewrites the forms from the flows' signatures (a plain text field for `stage`),
so run this again after every `prefect deploy`. Exit 1 when a deployment was left as it was.
"""

import sys

from neuroerp_ci.orchestration import offer_stage_choices

if __name__ == "__main__":
    lines = offer_stage_choices()
    print("\n".join(lines) or "no stage-gate, rollout or release deployment on the server")
    sys.exit(1 if any(": left as it was: " in line for line in lines) else 0)
