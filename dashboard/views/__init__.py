"""Page scripts run by st.navigation (a package only so installs ship them)."""
