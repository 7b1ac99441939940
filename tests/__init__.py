"""Top-level test modules import as ``tests.<name>`` so they may share a basename with a
module-mirroring test in a sub-directory (``test_daemon``: unit here, end-to-end in e2e/)."""
