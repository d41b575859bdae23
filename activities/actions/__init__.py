"""Off-platform actions: Slack, PagerDuty, Zendesk and their error mapping. Imports domain, stores."""
