"""Scale-out on Ray (the `ray` extra): `nst batch --ray` and `nst video --ray`.  Only imported with --ray."""
