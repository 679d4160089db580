from django.urls import path

from dashboard import menu_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("settings", views.SettingsView.as_view(), name="settings"),
    path("staff", views.StaffView.as_view(), name="staff"),
    path("audit", views.AuditLogView.as_view(), name="audit"),
    path("menus", menu_views.MenuEditorView.as_view(), name="menus"),
    path("menus/items/new", menu_views.ItemEditView.as_view(), name="item-new"),
    path("menus/items/<int:pk>", menu_views.ItemEditView.as_view(), name="item"),
    path("menus/items/<int:pk>/image", menu_views.ItemImageView.as_view(), name="item-image"),
    path("menus/publish", menu_views.PublishView.as_view(), name="publish"),
    path("sold-out", menu_views.SoldOutBoardView.as_view(), name="sold-out"),
    path("switch", views.SwitchRestaurantView.as_view(), name="switch"),
    path("sign-in", views.sign_in, name="sign-in"),
    path("sign-out", views.sign_out, name="sign-out"),
]
