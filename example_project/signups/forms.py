from __future__ import annotations

from django import forms


class SignupForm(forms.Form):
    email = forms.EmailField(max_length=254)
    name = forms.CharField(max_length=100)

    def clean_email(self) -> str:
        # One spelling per address, so the "email" index finds an earlier signup however typed.
        email: str = self.cleaned_data["email"]
        return email.strip().lower()
