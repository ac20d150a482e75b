"""WSGI entry point, as in tutorial 001: gunicorn wsgi:app"""

from application import app

if __name__ == "__main__":
    app.run(debug=False)
