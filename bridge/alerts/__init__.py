"""Official civil-protection alerts: CAP documents, the Department's bulletin, Meteoalarm's feed.

Pure core: bytes in, alerts and the events to post out (`cap`, `dpc`, `meteoalarm`), the zone
table (`zones`), what changed since the last poll (`state`), the Italian text (`text`).
"""
