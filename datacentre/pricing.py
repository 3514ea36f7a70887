"""``datacentre.pricing``, the public pricing API; it lives in :mod:`datacentre.core.pricing`."""
from datacentre.core.pricing import bs_price as bs_price
from datacentre.core.pricing import greeks as greeks
from datacentre.core.pricing import implied_vol as implied_vol
