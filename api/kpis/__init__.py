"""Portfolio and contact KPIs (PAR, collection, promises, roll and cure rates, conversion,
opt-outs, complaints, delivery outcomes): read-only figures at an as-of day."""
