"""The gateway's durable inbox: every inbound chat update, stored before it is acknowledged."""
