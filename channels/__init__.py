"""Outbound channels behind one interface, inbound adapters and the reply parser.

This room knows nothing of campaigns: the engine hands it an OutboundMessage
and records the SendResult it gets back.
"""
