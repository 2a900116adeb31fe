"""One stage run: start the target, run the checks in dependency order, judge them, record the
run and write its reports (:mod:`neuroerp_ci.run.runner`)."""
