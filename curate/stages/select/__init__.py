"""Selection: stages that mark each uid kept or dropped, with a reason."""

from curate.stages.select import basic_filter, caption_junk, predicates, top_fraction  # noqa: F401
