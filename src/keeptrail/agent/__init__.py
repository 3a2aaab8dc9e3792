"""The agent: sources -> durable spool -> shipper (docs/agent.md)."""
