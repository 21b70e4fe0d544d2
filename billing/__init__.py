"""Money and its evidence: invocation tracking, engagement, reward periods, the ledger."""
