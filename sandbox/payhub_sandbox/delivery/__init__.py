"""Delivering notifications to the shop: the scheduler and its faults.

``_faults`` holds the delivery faults (what may go wrong on the way) and imports
nothing of ``_scheduler``; ``_scheduler`` runs the channels' retry schedules
through them; ``_control`` is the control API over both.
"""
