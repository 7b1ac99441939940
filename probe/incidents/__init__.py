"""Fleet incidents (many endpoints of one group failing together for one reason) and the
probe's own vantage (whether the probe itself can reach the world)."""
