"""Offline stand-in for NCBI E-utilities: a local HTTP server, its records and fault plans.

``server.StandinServer`` serves ``records.StandinRecord``s (synthetic or ``demo.demo_records``)
with ``faults.FaultPlan`` failures; ``pubmed_xml`` renders the efetch XML.
"""
