"""Market data as every process sees it: the `MarketView` snapshot and the `MarketFollower`
that keeps it current from the market topics. Shared by the stream workers and the API, so
neither imports the other."""
