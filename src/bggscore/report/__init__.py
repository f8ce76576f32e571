"""`bggscore report`: the numbers behind one HTML page (``numbers``), its Vega-Lite charts
(``charts``, through altair) and the page itself (``page``, with vl-convert's bundle
inlined). Only the report command imports ``charts`` and ``page``."""
