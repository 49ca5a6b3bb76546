"""Selection: stages that mark each uid kept or dropped, with a reason."""

from curate.stages.select import (basic_filter, caption_junk, image_clusters, predicates, text_classes,  # noqa: F401
                                  top_fraction)
