"""Load tier: the runs of a results directory as typed tables (reads through ``storage``)."""
