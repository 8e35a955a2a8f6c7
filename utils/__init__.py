"""The pipeline's library, one subpackage per part — geometry/, encoder/, decoder/, pipeline/ (the stage runner and
budgets), evaluation/, app/ — on a small base: errors, io, paths, runtime, cli, plots."""
