"""The Streamlit dashboard: ``app.py`` is the entry (``pipepulse dashboard serve``), ``views/`` the
pages, ``data.py`` the only module that caches or touches the store, ``charts.py`` pure plotly
builders, ``state.py`` the global controls kept in the URL, ``auth.py`` the login wall.
Nothing imports ``dashboard``.
"""
