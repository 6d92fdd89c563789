"""Portfolio and contact KPIs (PAR, collection, promises, roll and cure rates, conversion,
opt-outs, complaints, delivery outcomes, right-party contact, SLA breaches per officer, the
causal lift of reminders): read-only figures at an as-of day."""
