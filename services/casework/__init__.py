"""The caregiver consultant's workbench: work queues, case pages and the consultant's actions."""
