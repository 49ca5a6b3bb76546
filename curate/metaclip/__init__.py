"""MetaCLIP curation: metadata entries, reference-exact substring matching, balanced sampling."""
