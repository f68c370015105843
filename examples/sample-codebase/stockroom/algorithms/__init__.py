"""Small algorithms the rest of the code base relies on, written out so they can be tuned and tested."""
