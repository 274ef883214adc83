"""Training of the learned detector network (torch; install the ``train`` extra). Imported only when used."""
