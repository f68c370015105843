"""Stock levels, demand forecasts and replenishment: how much to hold, where, and when to reorder."""
