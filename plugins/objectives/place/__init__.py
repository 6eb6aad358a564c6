"""PLACE (Wang et al., arXiv 2506.10573) as reconstructed in spec/place.md ("reconstruction").

* ``vpoe``: the Visual Pathology Observation Extractor (learnable pathology queries
  reading the patch tokens; V-PORs and their cross-attention maps).
* ``tpor``: textual pathological observations (T-PORs), one per report sentence (or clause).
* ``pcma``: the ``place_pcma`` objective, pathological-level cross-modal alignment.
* ``cce``: cross-modal correlation exploration (a separate module).

No official code exists; every PLACE-specific choice is a config key whose default
is the one spec/place.md gives.
"""
